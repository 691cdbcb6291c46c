//! Routes → parse the query into domain types → run the use case → one mapping to a response.

use billing::{Billing, Registration, RegistrationOutcome, codes};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use tracing::{error, info, warn};
use url::Url;

use crate::config::Config;
use crate::query::{FailQuery, QueryError, SuccessQuery};

/// Built once per cold start and shared by every invocation.
#[derive(Debug)]
pub(crate) struct State {
    billing: Billing,
    app_success_url: Url,
    app_fail_url: Url,
}

impl State {
    /// Opens the DynamoDB and Toss connections before the first event (see `Billing::warm_up`).
    pub(crate) async fn warm_up(&self) {
        self.billing.warm_up().await;
    }
}

impl State {
    pub(crate) fn new(config: Config, dynamodb: aws_sdk_dynamodb::Client) -> Result<Self, Error> {
        let toss = toss::Client::new(config.common.toss)?;
        let store = store::Store::new(dynamodb, config.common.table_name);
        Ok(Self {
            billing: Billing::new(toss, store, config.common.settings),
            app_success_url: config.app_success_url,
            app_fail_url: config.app_fail_url,
        })
    }
}

enum Route {
    Success,
    Fail,
}

/// What the function answers, before it becomes an HTTP response.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    ToApp,
    ToAppFailed(String),
    Json {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

pub(crate) async fn handle(state: &State, request: Request) -> Result<Response<Body>, Error> {
    let reply = route(state, &request).await;
    Ok(state.respond(reply))
}

async fn route(state: &State, request: &Request) -> Reply {
    let path = request.raw_http_path();
    let route = match path {
        "/billing/success" => Route::Success,
        "/billing/fail" => Route::Fail,
        _ => {
            return Reply::Json {
                status: StatusCode::NOT_FOUND,
                code: "NOT_FOUND",
                message: "no such route".into(),
            };
        }
    };
    if request.method() != Method::GET {
        return Reply::Json {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: "only GET is allowed here".into(),
        };
    }
    let raw_query = request.uri().query().unwrap_or_default();
    match route {
        Route::Fail => match FailQuery::parse(raw_query) {
            Ok(q) => {
                info!(code = %q.code, "billing auth failed at Toss");
                Reply::ToAppFailed(q.code)
            }
            Err(e) => bad_query(&e),
        },
        Route::Success => match SuccessQuery::parse(raw_query) {
            Ok(q) => register(state, q).await,
            Err(e) => bad_query(&e),
        },
    }
}

fn bad_query(e: &QueryError) -> Reply {
    warn!(reason = %e, "refused a redirect's query string");
    Reply::ToAppFailed("INVALID_REQUEST".into())
}

async fn register(state: &State, q: SuccessQuery) -> Reply {
    let registration = Registration {
        customer_key: q.customer_key,
        auth_key: q.auth_key,
        customer_email: q.customer_email,
        customer_name: q.customer_name,
    };
    match state
        .billing
        .register_card(&registration, chrono::Utc::now())
        .await
    {
        Ok(RegistrationOutcome::Subscribed { subscription_id }) => {
            info!(subscription = %subscription_id, "subscribed");
            Reply::ToApp
        }
        Ok(RegistrationOutcome::CardReplaced { subscription_id }) => {
            info!(subscription = %subscription_id, "card replaced");
            Reply::ToApp
        }
        Ok(RegistrationOutcome::Pending { subscription_id }) => {
            warn!(subscription = %subscription_id, "first charge outcome pending");
            Reply::ToAppFailed(codes::PAYMENT_PENDING.into())
        }
        Ok(RegistrationOutcome::Failed { code }) => Reply::ToAppFailed(code),
        Err(e) => {
            error!(error = %e, cause = ?e, "registration failed on our side");
            Reply::ToAppFailed(codes::SERVICE_ERROR.into())
        }
    }
}

impl State {
    fn respond(&self, reply: Reply) -> Response<Body> {
        let (status, location, body) = match reply {
            Reply::ToApp => (
                StatusCode::FOUND,
                Some(self.app_success_url.clone()),
                Body::Empty,
            ),
            Reply::ToAppFailed(code) => {
                let mut url = self.app_fail_url.clone();
                url.query_pairs_mut().append_pair("code", &code);
                (StatusCode::FOUND, Some(url), Body::Empty)
            }
            Reply::Json {
                status,
                code,
                message,
            } => {
                let body = serde_json::json!({ "error": { "code": code, "message": message } });
                (status, None, Body::Text(body.to_string()))
            }
        };
        let mut response = Response::builder()
            .status(status)
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::REFERRER_POLICY, "no-referrer");
        if let Some(url) = location {
            response = response.header(header::LOCATION, url.as_str());
        } else {
            response = response.header(header::CONTENT_TYPE, "application/json");
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response = response.header(header::ALLOW, "GET");
        }
        response
            .body(body)
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let vars = |name: &str| match name {
            "TOSS_SECRET_KEY" => Some("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R".to_owned()),
            "TOSS_API_BASE" => Some("http://127.0.0.1:9".to_owned()),
            "TABLE_NAME" => Some("billing".to_owned()),
            "APP_SUCCESS_URL" => Some("https://app.example/billing/done?from=toss".to_owned()),
            "APP_FAIL_URL" => Some("https://app.example/billing/failed".to_owned()),
            _ => None,
        };
        let config = Config::from_lookup(vars).unwrap();
        let aws = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("ap-northeast-2"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        State::new(config, aws_sdk_dynamodb::Client::from_conf(aws)).unwrap()
    }

    fn event(name: &str) -> Request {
        let json = match name {
            "success" => include_str!("../../../events/billing-api.success.json"),
            _ => include_str!("../../../events/billing-api.fail.json"),
        };
        lambda_http::request::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn the_sample_fail_event_redirects_to_the_app_fail_url_with_the_sanitised_code() {
        let response = handle(&state(), event("fail")).await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(
            location,
            "https://app.example/billing/failed?code=PAY_PROCESS_CANCELED"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[tokio::test]
    async fn the_sample_success_event_parses_and_reaches_the_use_case() {
        // The table is unreachable here, so the use case fails on our side: the customer is
        // still redirected (never a 5xx), and the URL carries no secret from the request.
        let request = event("success");
        let raw = request.uri().query().unwrap().to_owned();
        let response = handle(&state(), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(
            location,
            "https://app.example/billing/failed?code=SERVICE_ERROR"
        );
        let auth_key = raw
            .split('&')
            .find_map(|p| p.strip_prefix("authKey="))
            .unwrap();
        assert!(!location.contains(auth_key));
    }

    #[tokio::test]
    async fn unknown_routes_and_wrong_methods_get_json_errors_not_redirects() {
        let mut request = event("fail");
        *request.method_mut() = Method::POST;
        let response = handle(&state(), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    }

    #[tokio::test]
    async fn a_bad_query_redirects_to_the_fail_url_without_touching_toss_or_the_table() {
        let mut request = event("success");
        *request.uri_mut() = "/billing/success?customerKey=x&authKey=k".parse().unwrap();
        let response = handle(&state(), request).await.unwrap();
        assert_eq!(
            response.headers()[header::LOCATION].to_str().unwrap(),
            "https://app.example/billing/failed?code=INVALID_REQUEST"
        );
    }
}
