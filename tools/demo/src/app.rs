//! The demo's checkout app: what the Saju맛피아 Next.js server and its pages do around Toss's
//! billing window.
//!
//! - The visitor is signed in: a demo user id in a cookie (`user_demo_<ulid>`, made up on the
//!   first visit). For each backend call the server mints that user a session token from the
//!   local issuer, as Clerk's `getToken()` gives the Next.js server one.
//! - `GET /`: the server calls `POST /v1/checkout` and renders a plan card whose "구독하기" button
//!   runs the real `@tosspayments/tosspayments-sdk` loader (`loadTossPayments(clientKey, { src })`,
//!   served from the npm package at `/vendor/tosspayments-sdk.js`) and then
//!   `payment({customerKey}).requestBillingAuth({method:'CARD', successUrl, failUrl, …})` with
//!   the customer key and URLs the checkout answered.
//! - `GET /toss-sdk/v2/standard`: the script the loader fetches in place of
//!   `https://js.tosspayments.com/v2/standard`; it defines `window.TossPayments`, checks its
//!   arguments as Toss's does, and opens the sandbox's card window. Nothing leaves 127.0.0.1.
//! - `GET /done`: where billing-api sends the customer after success (`APP_SUCCESS_URL`); shows
//!   `GET /v1/subscription` and `GET /v1/payments`.
//! - `GET /failed?code=…`: where billing-api sends the customer after a failure (`APP_FAIL_URL`).

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Context;
use auth_issuer::{Issuer, TokenRequest};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::config::{CLIENT_KEY, PLAN_AMOUNT, Urls};
use crate::fmt::{kst, kst_day, won};

const COOKIE_NAME: &str = "demo_user";
/// Where the page's loader fetches Toss's script from (`loadTossPayments`'s `src` option).
const SDK_SCRIPT_PATH: &str = "/toss-sdk/v2/standard";
/// The npm package's browser build, as the app's bundler would ship it.
const LOADER_PATH: &str = "/vendor/tosspayments-sdk.js";
/// Where `scripts/install-deps` (npm ci in tools/demo/browser) puts that build.
const LOADER_FILE: &str =
    "tools/demo/browser/node_modules/@tosspayments/tosspayments-sdk/dist/index.esm.js";

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    issuer: Issuer,
    billing_api: String,
    sandbox: String,
    http: reqwest::Client,
}

impl AppState {
    pub(crate) fn new(issuer: Issuer, urls: &Urls) -> Self {
        Self {
            issuer,
            billing_api: urls.billing_api.clone(),
            sandbox: urls.sandbox.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Calls billing-api as `user` (a fresh bearer token, as `getToken()` gives one).
    async fn api(
        &self,
        user: &str,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let token = self
            .issuer
            .mint(&TokenRequest::for_user(user))
            .context("mint a session token")?;
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.billing_api))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let json = response
            .json()
            .await
            .with_context(|| format!("read the answer to {method} {path}"))?;
        Ok((status, json))
    }
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(checkout))
        .route("/done", get(done))
        .route("/failed", get(failed))
        .route(LOADER_PATH, get(loader))
        .route(SDK_SCRIPT_PATH, get(sdk_script))
        .with_state(state)
}

/// The `Cookie` header of a signed-in demo user.
pub(crate) fn session_cookie(user_id: &str) -> String {
    format!("{COOKIE_NAME}={user_id}")
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ font-family: "Apple SD Gothic Neo", "NanumGothic", "Noto Sans KR", sans-serif; background: #f2f4f6; color: #191f28; margin: 0; }}
  main {{ max-width: 560px; margin: 48px auto; background: #fff; border-radius: 16px; padding: 32px; box-shadow: 0 2px 12px rgba(0,0,0,.06); }}
  h1 {{ font-size: 22px; margin: 0 0 8px; }}
  .muted {{ color: #6b7684; font-size: 14px; }}
  .price {{ font-size: 32px; font-weight: 700; margin: 16px 0; }}
  button {{ background: #3182f6; color: #fff; border: 0; border-radius: 10px; font-size: 17px; padding: 14px 20px; width: 100%; cursor: pointer; }}
  table {{ border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 12px; }}
  th, td {{ text-align: left; padding: 6px 4px; border-bottom: 1px solid #e5e8eb; }}
  dl {{ display: grid; grid-template-columns: 9em 1fr; gap: 6px 12px; }}
  dt {{ color: #6b7684; }} dd {{ margin: 0; }}
  code {{ background: #f2f4f6; padding: 1px 5px; border-radius: 4px; }}
  .ok {{ color: #0a8f3c; }} .bad {{ color: #e42939; }}
  a {{ color: #3182f6; }}
</style>
</head>
<body><main>
{body}
</main></body>
</html>
"#
    )
}

/// HTML-escapes text for element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn new_user_id() -> String {
    format!(
        "user_demo_{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

/// The signed-in user, if the cookie names one that looks like a demo user id.
fn user_from_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
        .filter(|value| {
            (2..=64).contains(&value.len())
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

fn error_page(status: StatusCode, what: &str, detail: &str) -> Response {
    let body = format!(
        r#"<h1 id="outcome" class="bad">error</h1><p>{}</p><pre>{}</pre><p><a href="/">처음으로</a></p>"#,
        esc(what),
        esc(detail)
    );
    no_store((status, Html(page("오류", &body))).into_response())
}

/// `GET /`: signs the visitor in if needed, starts a checkout on their behalf and renders the
/// plan card with what the checkout answered.
async fn checkout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (user, new_session) = match user_from_cookie(&headers) {
        Some(user) => (user, false),
        None => (new_user_id(), true),
    };
    let answer = state
        .api(&user, reqwest::Method::POST, "/v1/checkout")
        .await;
    let checkout = match answer {
        Ok((201, json)) => json,
        Ok((status, json)) => {
            return error_page(
                StatusCode::BAD_GATEWAY,
                "POST /v1/checkout failed",
                &format!("HTTP {status}: {}", json["error"]),
            );
        }
        Err(e) => {
            return error_page(
                StatusCode::BAD_GATEWAY,
                "POST /v1/checkout failed",
                &format!("{e:#}"),
            );
        }
    };
    let text = |name: &str| checkout[name].as_str().unwrap_or_default().to_owned();
    let customer_key = text("customerKey");
    let config = serde_json::json!({
        "clientKey": CLIENT_KEY,
        "sdkSrc": SDK_SCRIPT_PATH,
        "customerKey": customer_key,
        "successUrl": text("successUrl"),
        "failUrl": text("failUrl"),
        "customerEmail": format!("{user}@example.com"),
        "customerName": "데모 사용자",
    });
    // JSON inside <script>: `<` escaped so no value can close the element.
    let config = config.to_string().replace('<', "\\u003c");
    let body = format!(
        r#"<p class="muted">Saju맛피아 · 로컬 데모 (Toss 샌드박스)</p>
<h1>Pro 구독</h1>
<p>매달 사주 풀이 30회. 첫 달은 카드 등록과 함께 바로 결제되고, 이후 매달 같은 날 자동 결제됩니다.</p>
<p class="price">{price}<span class="muted"> / 월</span></p>
<button id="subscribe" type="button" disabled>Pro {price}/월 구독하기</button>
<p id="sdk-error" class="bad" hidden></p>
<dl>
  <dt>로그인 사용자</dt><dd><code id="user-id">{user}</code></dd>
  <dt>고객 키</dt><dd><code id="customer-key">{customer}</code> <span class="muted">(POST /v1/checkout)</span></dd>
</dl>
<script type="application/json" id="config">{config}</script>
<script type="module">
// The real @tosspayments/tosspayments-sdk loader (the npm package's build); `src` points it at
// the demo's stand-in for https://js.tosspayments.com/v2/standard.
import {{ loadTossPayments }} from "{loader}";

const config = JSON.parse(document.getElementById("config").textContent);
const button = document.getElementById("subscribe");
button.addEventListener("click", async () => {{
  try {{
    const tossPayments = await loadTossPayments(config.clientKey, {{ src: config.sdkSrc }});
    const payment = tossPayments.payment({{ customerKey: config.customerKey }});
    await payment.requestBillingAuth({{
      method: "CARD",
      successUrl: config.successUrl,
      failUrl: config.failUrl,
      customerEmail: config.customerEmail,
      customerName: config.customerName,
    }});
  }} catch (error) {{
    const shown = document.getElementById("sdk-error");
    shown.textContent = `${{error.code ?? error.name}}: ${{error.message}}`;
    shown.hidden = false;
  }}
}});
button.disabled = false;
</script>"#,
        price = won(PLAN_AMOUNT),
        user = esc(&user),
        customer = esc(&customer_key),
        loader = LOADER_PATH,
    );
    let mut response = Html(page("Pro 구독하기", &body)).into_response();
    if new_session
        && let Ok(cookie) = HeaderValue::from_str(&format!(
            "{}; Path=/; HttpOnly; SameSite=Lax",
            session_cookie(&user)
        ))
    {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    no_store(response)
}

/// `GET /vendor/tosspayments-sdk.js`: the npm package's ES module build, unchanged.
async fn loader() -> Response {
    let path = crate::stack::workspace_root().join(LOADER_FILE);
    match tokio::fs::read(&path).await {
        Ok(bytes) => javascript(bytes),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "@tosspayments/tosspayments-sdk is not installed: run scripts/install-deps (npm ci in tools/demo/browser)",
        )
            .into_response(),
    }
}

/// `GET /toss-sdk/v2/standard`: what the loader runs in place of Toss's script.
async fn sdk_script(State(state): State<AppState>) -> Response {
    let sandbox = serde_json::to_string(&state.sandbox).unwrap_or_else(|_| "\"\"".to_owned());
    javascript(SDK_STAND_IN.replace("__SANDBOX__", &sandbox).into_bytes())
}

fn javascript(bytes: Vec<u8>) -> Response {
    no_store(
        (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            )],
            bytes,
        )
            .into_response(),
    )
}

/// A stand-in for Toss's v2 standard script: `window.TossPayments(clientKey)` with
/// `payment({customerKey}).requestBillingAuth({...})`, refusing what Toss's refuses before any
/// window opens (a non-test client key, a customer key outside Toss's rules or shaped like a
/// secret key, a method other than CARD, relative URLs), then opening the sandbox's card window
/// with the query Toss's window gets.
const SDK_STAND_IN: &str = r#"(function () {
  "use strict";
  var sandbox = __SANDBOX__;
  var CUSTOMER_KEY = /^[A-Za-z0-9\-_=.@]{2,50}$/;
  var SECRET_KEY = /^(test|live)_g?sk_/;
  function error(code, message) {
    var e = new Error(message);
    e.name = "TossPaymentsError";
    e.code = code;
    return e;
  }
  function absoluteHttp(url) {
    try {
      var parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:";
    } catch (e) {
      return false;
    }
  }
  window.TossPayments = function TossPayments(clientKey) {
    if (typeof clientKey !== "string" || !/^test_ck_./.test(clientKey)) {
      throw error("INVALID_CLIENT_KEY", "잘못된 클라이언트 연동 정보 입니다.");
    }
    return {
      payment: function (options) {
        var customerKey = options && options.customerKey;
        if (typeof customerKey !== "string" || !CUSTOMER_KEY.test(customerKey) || SECRET_KEY.test(customerKey)) {
          throw error("INVALID_CUSTOMER_KEY", "customerKey는 영문 대소문자, 숫자, 특수문자 -, _, =, ., @로 2자 이상 50자 이하여야 합니다.");
        }
        return {
          requestBillingAuth: function (request) {
            return new Promise(function (resolve, reject) {
              if (!request || request.method !== "CARD") {
                reject(error("INVALID_METHOD", "자동결제(빌링)는 CARD만 지원합니다."));
                return;
              }
              if (!absoluteHttp(request.successUrl)) {
                reject(error("INCORRECT_SUCCESS_URL_FORMAT", "잘못된 successUrl 입니다."));
                return;
              }
              if (!absoluteHttp(request.failUrl)) {
                reject(error("INCORRECT_FAIL_URL_FORMAT", "잘못된 failUrl 입니다."));
                return;
              }
              var query = new URLSearchParams({
                clientKey: clientKey,
                customerKey: customerKey,
                successUrl: request.successUrl,
                failUrl: request.failUrl,
              });
              if (request.customerEmail) query.set("customerEmail", request.customerEmail);
              if (request.customerName) query.set("customerName", request.customerName);
              window.location.assign(sandbox + "/billing-auth?" + query.toString());
            });
          },
        };
      },
    };
  };
})();
"#;

/// `GET /done`: the signed-in user's subscription and payments, from the app API.
async fn done(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(user) = user_from_cookie(&headers) else {
        return no_store(
            Html(page(
                "구독",
                r#"<h1 id="outcome">signed-out</h1><p>로그인한 데모 사용자가 없습니다. <a href="/">처음으로</a></p>"#,
            ))
            .into_response(),
        );
    };
    match subscription_html(&state, &user).await {
        Ok(html) => no_store(Html(page("구독 완료", &html)).into_response()),
        Err(e) => error_page(
            StatusCode::BAD_GATEWAY,
            "the app API did not answer",
            &format!("{e:#}"),
        ),
    }
}

async fn subscription_html(state: &AppState, user: &str) -> anyhow::Result<String> {
    let (status, sub) = state
        .api(user, reqwest::Method::GET, "/v1/subscription")
        .await?;
    anyhow::ensure!(status == 200, "GET /v1/subscription: HTTP {status}: {sub}");
    let (status, payments) = state
        .api(user, reqwest::Method::GET, "/v1/payments?limit=20")
        .await?;
    anyhow::ensure!(status == 200, "GET /v1/payments: HTTP {status}: {payments}");
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let mut rows = String::new();
    for payment in payments["payments"].as_array().into_iter().flatten() {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&time(&payment["approvedAt"])
                .map(kst)
                .unwrap_or_else(|| "-".into())),
            esc(&text(&payment["orderId"])),
            esc(&won(payment["amount"].as_u64().unwrap_or(0))),
            esc(&text(&payment["status"])),
            esc(payment["failure"]["code"].as_str().unwrap_or("")),
        );
    }
    let active = sub["status"] == "active";
    Ok(format!(
        r#"<p class="muted">Saju맛피아 · 로컬 데모</p>
<h1 id="outcome" class="{class}">{title}</h1>
<dl>
  <dt>로그인 사용자</dt><dd><code id="user-id">{user}</code></dd>
  <dt>상태</dt><dd id="status">{status}</dd>
  <dt>카드</dt><dd id="card">{card}</dd>
  <dt>크레딧</dt><dd id="credits">{credits}</dd>
  <dt>이번 기간 끝</dt><dd>{period_end}</dd>
  <dt>다음 결제일</dt><dd id="next-charge">{next}</dd>
</dl>
<h2 style="font-size:16px">결제 내역 (GET /v1/payments)</h2>
<table id="ledger"><thead><tr><th>승인 시각</th><th>주문번호 (orderId)</th><th>금액</th><th>결과</th><th>코드</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class="muted"><a href="/">처음으로</a></p>"#,
        class = if active { "ok" } else { "bad" },
        title = if active {
            "구독이 시작되었습니다"
        } else {
            "구독 상태"
        },
        user = esc(user),
        status = esc(&text(&sub["status"])),
        card = esc(&text(&sub["card"]["number"])),
        credits = sub["credits"].as_u64().unwrap_or(0),
        period_end = time(&sub["currentPeriod"]["end"])
            .map(kst)
            .unwrap_or_else(|| "-".into()),
        next = time(&sub["nextChargeAt"])
            .map(kst_day)
            .unwrap_or_else(|| "-".into()),
    ))
}

/// The code as billing-api sent it, if it looks like one (`[A-Z0-9_]`, at most 64 characters).
fn clean_code(query: &HashMap<String, String>) -> String {
    query
        .get("code")
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
        })
        .cloned()
        .unwrap_or_else(|| "UNKNOWN".to_owned())
}

fn explain(code: &str) -> &'static str {
    match code {
        "INVALID_CARD_NUMBER" => "카드번호가 올바르지 않습니다. 카드 정보를 다시 확인해주세요.",
        "REJECT_CARD_COMPANY" => "카드사에서 카드 등록을 거절했습니다. 다른 카드를 사용해주세요.",
        "PAY_PROCESS_CANCELED" => "카드 등록을 취소했습니다.",
        "REJECT_CARD_PAYMENT" => "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
        "INVALID_STOPPED_CARD" | "INVALID_CARD_EXPIRATION" => {
            "사용할 수 없는 카드입니다. 다른 카드를 등록해주세요."
        }
        _ => "카드 등록 또는 첫 결제에 실패했습니다. 잠시 후 다시 시도해주세요.",
    }
}

async fn failed(Query(query): Query<HashMap<String, String>>) -> Response {
    let code = clean_code(&query);
    let body = format!(
        r#"<p class="muted">Saju맛피아 · 로컬 데모</p>
<h1 id="outcome" class="bad">구독하지 못했습니다</h1>
<p>{message}</p>
<p>코드: <code id="fail-code">{code}</code></p>
<p><a href="/">다시 시도하기</a></p>"#,
        message = esc(explain(&code)),
        code = esc(&code),
    );
    no_store(Html(page("구독 실패", &body)).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn only_code_shaped_values_are_shown_as_the_fail_code() {
        let q = |v: &str| HashMap::from([("code".to_owned(), v.to_owned())]);
        assert_eq!(clean_code(&q("INVALID_CARD_NUMBER")), "INVALID_CARD_NUMBER");
        assert_eq!(clean_code(&q("<script>")), "UNKNOWN");
        assert_eq!(clean_code(&HashMap::new()), "UNKNOWN");
    }

    #[test]
    fn the_signed_in_user_comes_from_the_demo_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=b; demo_user=user_demo_abc; c=d"),
        );
        assert_eq!(user_from_cookie(&headers).unwrap(), "user_demo_abc");
    }

    #[test]
    fn a_cookie_that_is_not_a_user_id_signs_nobody_in() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("demo_user=<script>"));
        assert_eq!(user_from_cookie(&headers), None);
        assert_eq!(user_from_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn made_up_user_ids_read_back_from_their_cookie() {
        let user = new_user_id();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&session_cookie(&user)).unwrap(),
        );
        assert_eq!(user_from_cookie(&headers).as_deref(), Some(user.as_str()));
    }
}
